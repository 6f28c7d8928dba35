print("quick start")
