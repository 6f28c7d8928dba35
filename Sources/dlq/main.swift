print("dlq: not yet available")
