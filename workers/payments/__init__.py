"""The payments component: charges and refunds through the payment gateway."""
