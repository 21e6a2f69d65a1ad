"""Mattermost and Rocket.Chat: digests through Slack-compatible incoming webhooks."""
