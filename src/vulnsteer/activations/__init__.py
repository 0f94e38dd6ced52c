"""activations stage of vulnsteer."""
