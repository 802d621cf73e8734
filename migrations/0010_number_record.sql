-- vocals schema, version 10: a number's own word on recording ('off' or 'dual'); NULL follows its agent's, then
-- the server's [recording] record. A number's 'off' wins over its agent's 'dual'.
ALTER TABLE phone_numbers ADD COLUMN record TEXT;
