"""data stage of vulnsteer."""
