"""Rounds: the project, generation, features, discriminator versions, queues, review, automation, estimates, status, report, the round driver."""
