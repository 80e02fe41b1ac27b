-- A reminder may refer to the message it is about ("Remind me about this" from a message's
-- menu). Unlike `source_message_id` (the asking message, one reminder each), many people may
-- set reminders about the same message, so this column is not unique.

ALTER TABLE reminders
    ADD COLUMN about_message_id uuid REFERENCES messages (id) ON DELETE SET NULL;
