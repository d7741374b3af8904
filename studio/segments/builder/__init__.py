"""The visual segment builder's model: the Segments page's pure helpers, without Streamlit.

The page edits a *draft* (a name, a description and a tree of rows that is a rule
document with ids) and draws each row's widgets from descriptions made here:

* :mod:`.tree` keeps the rule as editable rows: rows <-> document, add, nest and remove
  rows, and which rows are unfinished;
* :mod:`.drafts` holds what the page edits and where it starts from (blank, a preset, a
  saved segment), and writes it back as the segment document the CLI takes;
* :mod:`.conditions` describes each condition kind's widgets and applies their values,
  from the shared pieces in :mod:`.widgets` (the :class:`Input` type, windows,
  comparisons, property filters);
* :mod:`.choices` reads the options that come from the warehouse, with bound parameters;
* :mod:`.display` and :mod:`.labels` put rules and results into words and charts.

Every public name is re-exported here, so ``from studio.segments import builder`` and
``builder.tree_from_rule(...)`` keep working.
"""

from studio.segments.builder.choices import (
    FREE_TEXT_FIELDS,
    LOOKUPS,
    VALUE_LIMIT,
    Choices,
    attribute_names,
    campaign_choices,
    categories,
    event_property_names,
    event_property_values,
    product_choices,
    profile_values,
    score_targets,
    total_customers,
)
from studio.segments.builder.conditions import (
    DEFAULT_SCORE_TARGET,
    apply_input,
    condition_inputs,
    default_body,
    edit_condition,
)
from studio.segments.builder.display import (
    describe,
    escape_markdown,
    explanation_markdown,
    overlap_figure,
    preview_pages,
)
from studio.segments.builder.drafts import (
    Draft,
    as_of_moment,
    document_key,
    document_text,
    draft_from_definition,
    draft_from_text,
    history_rows,
    load_definition,
    load_source,
    overlap_choices,
    overlap_definitions,
    saved_version,
    segment_document,
    sources,
)
from studio.segments.builder.labels import (
    ACTION_LABELS,
    CHANNEL_LABELS,
    CONSENT_LABELS,
    EVENT_LABELS,
    GROUP_LABELS,
    KIND_LABELS,
    METRIC_LABELS,
    OPERATOR_LABELS,
    PREVIEW_LABELS,
    SCORE_LABELS,
    SEQUENCE_LABELS,
    SYMBOLS,
    WINDOW_LABELS,
)
from studio.segments.builder.tree import (
    MAX_DEPTH,
    add_condition,
    add_group,
    blank_tree,
    condition_node,
    depth_of,
    find_node,
    group_node,
    new_id,
    problem,
    problems,
    remove_node,
    rule_from_tree,
    tree_from_rule,
)
from studio.segments.builder.widgets import Input

__all__ = [
    "ACTION_LABELS", "CHANNEL_LABELS", "CONSENT_LABELS", "DEFAULT_SCORE_TARGET", "EVENT_LABELS",
    "FREE_TEXT_FIELDS", "GROUP_LABELS", "KIND_LABELS", "LOOKUPS", "MAX_DEPTH", "METRIC_LABELS",
    "OPERATOR_LABELS", "PREVIEW_LABELS", "SCORE_LABELS", "SEQUENCE_LABELS", "SYMBOLS",
    "VALUE_LIMIT", "WINDOW_LABELS",
    "Choices", "Draft", "Input",
    "add_condition", "add_group", "apply_input", "as_of_moment", "attribute_names",
    "blank_tree", "campaign_choices", "categories", "condition_inputs", "condition_node",
    "default_body", "depth_of", "describe", "document_key", "document_text",
    "draft_from_definition", "draft_from_text", "edit_condition", "escape_markdown",
    "event_property_names", "event_property_values", "explanation_markdown", "find_node",
    "group_node", "history_rows", "load_definition", "load_source", "new_id",
    "overlap_choices", "overlap_definitions", "overlap_figure", "preview_pages", "problem",
    "problems", "product_choices", "profile_values", "remove_node", "rule_from_tree",
    "saved_version", "score_targets", "segment_document", "sources", "total_customers",
    "tree_from_rule",
]
