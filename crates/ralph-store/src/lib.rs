//! ralph's durable state in `.ralph/ralph.db`.
