"""A trivial EC2 endpoint for scripts/bench-serve.sh: answers every
request with one canned CreateVolume response, over HTTP/1.1 keep-alive,
doing no work. boto3 against it measures boto3's own cost per call (the
bound on any server's create-volume rate through boto3). Prints its URL,
then serves until killed."""

import http.server
import socketserver
import sys

BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<CreateVolumeResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
    "<requestId>3f6b9c0e-0000-4000-8000-000000000000</requestId>"
    "<volumeId>vol-0123456789abcdef0</volumeId><size>1</size><snapshotId/>"
    "<availabilityZone>us-east-1a</availabilityZone><status>creating</status>"
    "<createTime>2024-05-01T10:00:00.000Z</createTime><volumeType>gp2</volumeType>"
    "<iops>100</iops><encrypted>false</encrypted><multiAttachEnabled>false</multiAttachEnabled>"
    "<tagSet/></CreateVolumeResponse>"
).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        # One write: a head and a body sent apart would wait on Nagle's
        # algorithm and the client's delayed acknowledgement (40 ms).
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml;charset=UTF-8\r\n"
            + f"Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY)

    def log_message(self, *_):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
print(f"http://127.0.0.1:{srv.server_address[1]}", flush=True)
sys.stdout.close()
srv.serve_forever()
