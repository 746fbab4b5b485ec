// A reference for `hookscope send FILE`: Panther's Custom Webhook sender, its own
// code, compiled here with Debian's Go and json-iterator (1.1.12, whose encoder
// is 1.1.10's, the version Panther pins). The alert file is decoded into
// Panther's Notification struct (internal/core/alert_delivery/outputs/outputs.go)
// and sent as outputs/post.go sends it.
//
// Usage: panther_sender FILE URL
package main

import (
	"bytes"
	"fmt"
	"io/ioutil"
	"net/http"
	"os"
	"time"

	jsoniter "github.com/json-iterator/go"
)

// Notification is Panther's struct, field for field.
type Notification struct {
	ID           string                 `json:"id"`
	CreatedAt    time.Time              `json:"createdAt"`
	Severity     string                 `json:"severity"`
	Type         string                 `json:"type"`
	Link         string                 `json:"link"`
	Title        string                 `json:"title"`
	Name         *string                `json:"name"`
	AlertID      *string                `json:"alertId"`
	AlertContext map[string]interface{} `json:"alertContext"`
	Description  *string                `json:"description"`
	Runbook      *string                `json:"runbook"`
	Tags         []string               `json:"tags"`
	Version      *string                `json:"version"`
}

func main() {
	data, err := ioutil.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var notification Notification
	if err := jsoniter.Unmarshal(data, &notification); err != nil {
		fmt.Fprintln(os.Stderr, "decode:", err)
		os.Exit(2)
	}
	// generateNotificationFromAlert ends with genericapi.ReplaceMapSliceNils: a nil
	// slice or map is written as [] or {}, not null.
	if notification.Tags == nil {
		notification.Tags = []string{}
	}
	if notification.AlertContext == nil {
		notification.AlertContext = map[string]interface{}{}
	}
	// outputs/post.go, from here on.
	payload, err := jsoniter.Marshal(notification)
	if err != nil {
		fmt.Fprintln(os.Stderr, "json marshal error:", err)
		os.Exit(2)
	}
	request, err := http.NewRequest("POST", os.Args[2], bytes.NewBuffer(payload))
	if err != nil {
		fmt.Fprintln(os.Stderr, "http request error:", err)
		os.Exit(2)
	}
	request.Header.Set("Content-Type", "application/json")
	request.Header.Set("Accept", "application/json")
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		fmt.Fprintln(os.Stderr, "network error:", err)
		os.Exit(1)
	}
	defer response.Body.Close()
	fmt.Println(response.Status)
}
