"""Pure domain: events, policy, decisions and outcomes. Imports nothing from AWS or Tencent."""
