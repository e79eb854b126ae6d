{
  "targets": [
    {
      "target_name": "original_dst",
      "sources": ["native/original_dst.c"]
    },
    {
      "target_name": "flock",
      "sources": ["native/flock.c"]
    }
  ]
}
