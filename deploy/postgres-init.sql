-- One database per service: each runs its own migrations.
CREATE DATABASE users;
CREATE DATABASE mailer;
