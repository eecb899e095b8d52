"""Studies built on the library: walkthroughs and comparisons that plan their runs as
sweep specs and read the stored records."""
