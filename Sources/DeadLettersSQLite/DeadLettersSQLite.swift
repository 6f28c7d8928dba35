// The DeadLettersSQLite module; see DESIGN.md.
