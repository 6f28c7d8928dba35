// The DeadLettersTesting module; see DESIGN.md.
