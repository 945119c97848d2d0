-- wrk script: POST /authenticate with the bench reader's login and right password.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"login":"reader","password":"bench-password-1"}'
