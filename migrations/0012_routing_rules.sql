-- vocals schema, version 12: routing rules (issue 26). phone_numbers.rules: the number's rules as a JSON list
-- ('[]': none, its agent_id answers every call). calls.route: which of the number's routes took the call,
-- 'default' or 'rules[i]' (NULL: the call was refused before a number was found, or came before version 12).
ALTER TABLE phone_numbers ADD COLUMN rules TEXT NOT NULL DEFAULT '[]';
ALTER TABLE calls ADD COLUMN route TEXT;
