from deparrow_secrets.cli import main

main()
