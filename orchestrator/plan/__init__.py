"""From jobs to tasks and prepared data on the driver: pure expansion and checks, no Ray."""
