"""model stage of vulnsteer."""
