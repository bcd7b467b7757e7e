"""Training the kit's own tiny VidRD: a resumable loop and the four stages of the recipe."""
