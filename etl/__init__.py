"""Getting data in: sources and mappings, validation and quarantine, loading, the generator."""
