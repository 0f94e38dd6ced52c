"""evaluation stage of vulnsteer."""
