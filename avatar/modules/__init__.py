"""nn.Module building blocks (torch only, never Lightning): one network per file."""
