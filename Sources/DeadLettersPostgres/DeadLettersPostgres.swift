// The DeadLettersPostgres module; see DESIGN.md.
