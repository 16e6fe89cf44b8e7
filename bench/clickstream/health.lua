-- Reference: the same server answering without Kafka, write keys or JSON.
wrk.method = "GET"
wrk.path = "/health"
