"""Built-in rule configs (YAML), selectable by name."""
