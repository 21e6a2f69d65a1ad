"""The email output: digests as one multipart (text + HTML) message each, sent over SMTP to
``mailto:ADDRESS`` destinations, set up in the ``[outputs.email]`` section."""
