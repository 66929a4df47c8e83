"""Client-side rotation plumbing: workflow inputs from settings, schedules, usage reports."""
