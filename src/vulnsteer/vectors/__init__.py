"""vectors stage of vulnsteer."""
