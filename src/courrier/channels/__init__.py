"""Channels: one module a channel, each sends one message and says sent, transient or permanent.

``email`` sends through an SMTP server with a pool of reused connections;
``capture`` is the local SMTP server that keeps mail when none is configured.
"""
