"""experiments stage of vulnsteer."""
