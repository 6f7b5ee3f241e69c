"""Training: losses, triplets, optimizers with freezing rules, and the jitted steps."""
