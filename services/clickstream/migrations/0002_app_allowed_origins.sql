-- Browser origins allowed to post an app's events (CORS), as browsers send `Origin`:
-- `https://shop.example.com`, or `https://*.example.com` for its subdomains.
-- NULL: any origin; an empty array: none (the app is tracked from servers only).
-- The apps_changed trigger already tells the Event API's write-key cache.
ALTER TABLE clickstream.apps ADD COLUMN allowed_origins TEXT[];
