module github.com/couchnpm/couchnpm

go 1.26.8

require (
	github.com/go-kivik/kivik/v4 v4.5.2
	github.com/gorilla/mux v1.8.1
	github.com/rs/zerolog v1.35.1
)

require (
	github.com/google/uuid v1.6.0 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/net v0.35.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.30.0 // indirect
)
