// The DeadLettersAdmin module; see DESIGN.md.
