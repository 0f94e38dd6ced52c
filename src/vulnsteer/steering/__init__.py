"""steering stage of vulnsteer."""
