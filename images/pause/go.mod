module vmplatform.local/pause

go 1.24
