"""The shared member inbox: reading tenants' mailboxes and filing each mail on its sender.

``reader`` runs the IMAP readers, ``parsing`` and ``reports`` read a mail,
``filing`` stores it, ``html`` makes received HTML safe, ``documents`` keeps
attachments, ``passwords`` encrypts mailbox passwords, ``connection`` talks IMAP.
"""
