"""The techniques of an image run, as ordered stages over one run state."""
