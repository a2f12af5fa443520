"""The `mt` subcommands, one module per group: each `add(sub)` declares its arguments, its handler right below."""
