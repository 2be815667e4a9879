"""GSM8K pipeline."""
