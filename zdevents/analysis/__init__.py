"""SLA analysis over frames: targets and their outcomes, breach rates, ticket attributes,
insight tables. Pure functions: no HTTP, no files."""
