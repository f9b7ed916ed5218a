"""The CLI's command functions: each takes plain options, never argparse."""
