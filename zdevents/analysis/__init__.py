"""SLA analysis over frames: targets and their outcomes, breach rates, metric labels, ticket
attributes, insight tables. Pure functions: no HTTP, no files."""
