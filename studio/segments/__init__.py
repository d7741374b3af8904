"""Segments: who is in an audience, defined as a tree of conditions and compiled to SQL.

* :mod:`~studio.segments.definition` parses and validates segment documents;
* :mod:`~studio.segments.catalog` lists the fields and values a definition may name;
* :mod:`~studio.segments.compiler` turns a definition into SQLAlchemy Core;
* :mod:`~studio.segments.operations` counts, previews, explains and overlaps;
* :mod:`~studio.segments.library` keeps saved segments, versions and snapshots.
"""
