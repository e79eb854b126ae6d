# The image real clusters run for Isthmus: tag it both <hub>/pilot:<tag> (istiod runs
# `isthmus discovery`) and <hub>/proxyv2:<tag> (istio-init runs `isthmus proxy init`, the
# istio-proxy container `isthmus proxy sidecar`); the manifests' args pick the part.
#   docker build -t <hub>/pilot:<tag> . && docker tag <hub>/pilot:<tag> <hub>/proxyv2:<tag>
#   isthmus install --context=<ctx> -f cluster1.yaml --set hub=<hub> --set tag=<tag>
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables iproute2 curl ca-certificates python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/isthmus
COPY package.json package-lock.json binding.gyp ./
COPY native ./native
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY samples ./samples
ENTRYPOINT ["node", "/opt/isthmus/bin/isthmus"]
