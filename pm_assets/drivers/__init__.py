"""What drives the platform: the `pm` command line, the in-process runner of jobs, the daily loop."""
