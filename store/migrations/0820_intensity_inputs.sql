-- The metrics flow recomputes an industry's intensity ranking once per pass, after every
-- enterprise's metrics, and only when something it reads changed: an enterprise of the industry
-- had new or changed intervals in the year, or the recorded inputs did (production rows and
-- reference values of the industry's enterprises, the industry's members). This digest of the
-- recorded inputs, the same in every row of an industry-year, is what the next pass compares.
ALTER TABLE intensity_ytd ADD COLUMN inputs_sha256 text;
