// Command gentasks rewrites the sections of the OpenAPI document that are
// generated from the task registry (the TaskType enum and the TaskOptions
// schema; see api.RenderTaskSections). It is run by `go generate ./api`:
//
//	go run ./internal/gentasks openapi.yaml
package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/themis-maintenance/themis/api"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gentasks openapi.yaml")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gentasks:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := api.RenderTaskSections(doc)
	if err != nil {
		return err
	}
	if bytes.Equal(out, doc) {
		return nil
	}
	return os.WriteFile(path, out, 0o644)
}
