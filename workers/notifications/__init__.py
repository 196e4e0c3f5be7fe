"""The notifications component: the mails the shop sends its customers, learnt from events."""
