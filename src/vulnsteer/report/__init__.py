"""report stage of vulnsteer."""
